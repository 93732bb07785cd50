// The console's behaviour: every change is one API request from here, after a confirm dialog,
// with the session's CSRF token; the API's own message is shown when it refuses. The task page
// follows the task's event stream and has htmx swap in the graph and the selected subtask.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

document.addEventListener("htmx:configRequest", (e) => {
  e.detail.headers["X-CSRF-Token"] = csrf();
});

// --- confirm dialog and messages ------------------------------------------------------------

function confirmed(message) {
  const dialog = document.getElementById("confirm");
  if (!message || !dialog) return Promise.resolve(true);
  dialog.querySelector(".confirm-text").textContent = message;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}

function flash(message, kind) {
  const box = document.getElementById("flash");
  box.textContent = message;
  box.className = "flash " + (kind || "error");
  box.hidden = !message;
  if (message) box.scrollIntoView({ block: "nearest" });
}

// --- requests to the API --------------------------------------------------------------------

async function callApi(method, url, body) {
  const init = { method, headers: { "X-CSRF-Token": csrf() }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const answer = await fetch(url, init);
  let envelope = null;
  try {
    envelope = await answer.json();
  } catch (_) {
    envelope = null;
  }
  if (!answer.ok || !envelope || !envelope.successful) {
    const error = envelope && envelope.error ? envelope.error.message : answer.statusText;
    throw new Error(error || String(answer.status));
  }
  return envelope.data;
}

// Where to go once the API accepted: the task it started, or this page again.
function after(then, data) {
  if (then === "task") {
    const tasks = data && data.contents ? data.contents : [data];
    if (tasks.length === 1 && tasks[0] && tasks[0].id) {
      location.assign(document.body.dataset.prefix + "/tasks/" + tasks[0].id);
    } else {
      location.assign(document.body.dataset.prefix + "/tasks");
    }
  } else if (then && then.startsWith("/")) {
    location.assign(then);
  } else {
    location.reload();
  }
}

// --- forms to JSON --------------------------------------------------------------------------

function put(target, path, value) {
  const keys = path.split(".");
  let at = target;
  // "hosts.0.hostId": a number as the next key makes a list.
  keys.slice(0, -1).forEach((k, i) => {
    at[k] = at[k] || (/^\d+$/.test(keys[i + 1]) ? [] : {});
    at = at[k];
  });
  const last = keys[keys.length - 1];
  if (last.endsWith("[]")) {
    const key = last.slice(0, -2);
    at[key] = at[key] || [];
    at[key].push(value);
  } else {
    at[last] = value;
  }
}

const lines = (raw) => raw.split("\n").map((s) => s.trim()).filter((s) => s);

// "ip:rpcPort:sqlPort" a line; the first is the leader.
function rootServers(raw) {
  return lines(raw).map((line, i) => {
    const [ip, rpc, sql] = line.split(":");
    return { address: `${ip}:${rpc}`, role: i ? "FOLLOWER" : "LEADER", sqlPort: Number(sql) };
  });
}

function valueOf(field) {
  const kind = field.dataset.kind || "text";
  const raw = field.value;
  if (kind === "int") return raw.trim() === "" ? null : Number(raw);
  if (kind === "json") return JSON.parse(raw);
  if (kind === "hosts") return lines(raw).map((ip) => ({ innerIpAddress: ip }));
  if (kind === "rootservers") return rootServers(raw);
  return raw;
}

// A credential's secret is its password or its private key, as its auth type says.
function fieldName(field) {
  if (field.dataset.kind !== "secret") return field.name;
  const auth = field.form.querySelector("[name=authType]");
  return auth && auth.value === "PRIVATE_KEY" ? "privateKey" : "password";
}

function formBody(form) {
  const body = {};
  form.querySelectorAll("[name]").forEach((field) => {
    if (field.closest(".param-row") || field.name === "csrf") return;
    if ((field.type === "checkbox" || field.type === "radio") && !field.checked) return;
    const value = valueOf(field);
    if (value === null || (value === "" && !field.dataset.keepEmpty)) return;
    put(body, fieldName(field), value);
  });
  form.querySelectorAll("[data-param-list]").forEach((list) => {
    const items = [];
    list.querySelectorAll(".param-row").forEach((row) => {
      const name = row.querySelector("[data-field=name]").value;
      const value = row.querySelector("[data-field=value]").value;
      if (name) items.push({ name, value });
    });
    if (items.length || list.dataset.keepEmpty) put(body, list.dataset.paramList, items);
  });
  // A body that is a list (e.g. obLinks/batchAdd): the form's values in order.
  return form.dataset.asList ? Object.values(body) : body;
}

function selectedIds(scope) {
  return Array.from(document.querySelectorAll(scope + " input[type=checkbox]:checked")).map(
    (box) => box.value,
  );
}

async function submitApi(element, body) {
  const d = element.dataset;
  let url = d.url;
  if (d.selected) {
    const ids = selectedIds(d.selected);
    if (!ids.length) return flash(d.selectNone);
    url = url.replace("{ids}", ids.join(","));
  }
  if (!(await confirmed(d.confirm))) return;
  flash("");
  element.setAttribute("aria-busy", "true");
  try {
    after(d.then, await callApi(d.method || "POST", url, body));
  } catch (error) {
    flash(error.message);
  } finally {
    element.removeAttribute("aria-busy");
  }
}

document.addEventListener("submit", (e) => {
  const form = e.target;
  if (form.classList.contains("api-form")) {
    e.preventDefault();
    let body;
    try {
      body = formBody(form);
    } catch (error) {
      return flash(error.message);
    }
    submitApi(form, body);
  } else if (form.classList.contains("upload-form")) {
    e.preventDefault();
    upload(form);
  }
});

document.addEventListener("click", (e) => {
  const button = e.target.closest(".api-button");
  if (button) {
    e.preventDefault();
    const body = button.dataset.body ? JSON.parse(button.dataset.body) : undefined;
    submitApi(button, body);
  }
  const proxyro = e.target.closest(".proxyro-set");
  if (proxyro) setProxyro(proxyro);
  const add = e.target.closest("[data-add-param]");
  if (add) addParamRow(add);
  const remove = e.target.closest(".param-remove");
  if (remove) remove.closest(".param-row").remove();
  const node = e.target.closest("[data-subtask]");
  if (node) selectSubtask(node.dataset.subtask);
});

// --- parameters from the catalog ------------------------------------------------------------

function catalog() {
  const element = document.getElementById("catalog");
  return element ? JSON.parse(element.textContent) : {};
}

function addParamRow(button) {
  const list = document.querySelector(button.dataset.addParam);
  const row = document.getElementById("param-row-template").content.firstElementChild.cloneNode(true);
  list.appendChild(row);
  row.querySelector("[data-field=name]").focus();
}

// A parameter's input follows its type: a list of allowed values, a number, or a switch.
document.addEventListener("change", (e) => {
  const select = e.target.closest(".param-row [data-field=name]");
  if (!select) return;
  const info = catalog()[select.value];
  const row = select.closest(".param-row");
  const old = row.querySelector("[data-field=value]");
  let input;
  // The catalog spells allowed values as "[DEBUG,TRACE,INFO]".
  const listed = info && info.allowedStringValues ? info.allowedStringValues.replace(/^\[|\]$/g, "") : "";
  const allowed = listed ? listed.split(/[,|]/) : [];
  if (info && (info.type === "BOOL" || info.type === "bool")) {
    input = document.createElement("select");
    ["true", "false"].forEach((v) => input.add(new Option(v, v)));
  } else if (allowed.length > 1) {
    input = document.createElement("select");
    allowed.forEach((v) => input.add(new Option(v.trim(), v.trim())));
  } else {
    input = document.createElement("input");
    if (info && /INT|NUMBER/i.test(info.type)) {
      input.type = "number";
      if (info.minValue) input.min = info.minValue;
      if (info.maxValue) input.max = info.maxValue;
    }
  }
  input.dataset.field = "value";
  input.setAttribute("aria-label", "value");
  if (info) input.value = info.defaultValue;
  old.replaceWith(input);
  row.querySelector(".param-help").textContent = info
    ? `${info.description} (${info.type}, default ${info.defaultValue}${info.needRestart ? ", restart" : ""})`
    : "";
});

// --- wizard: ports taken on the hosts, and the proxyro credential of the OB clusters ---------

// Each host's ports that obfleet's recorded obproxies use (data-used: port -> cluster), marked
// against the ports chosen; the API still refuses (and the install finds) what it alone knows.
function markPorts() {
  const hosts = document.getElementById("wizard-hosts");
  if (!hosts) return;
  const ports = ["sqlPort", "exportPort"].map((name) =>
    hosts.form.querySelector(`[name='obproxyInstallParam.${name}']`).value.trim(),
  );
  hosts.querySelectorAll(".port-state").forEach((state) => {
    const used = JSON.parse(state.dataset.used);
    const taken = ports
      .filter((port) => port && used[port])
      .map((port) => hosts.dataset.taken.replace("{port}", port).replace("{cluster}", used[port]));
    state.textContent = taken.length ? taken.join("; ") : hosts.dataset.free;
    state.classList.toggle("taken", taken.length > 0);
  });
}

document.addEventListener("input", (e) => {
  if (e.target.matches("[name^='obproxyInstallParam.'][type=number]")) markPorts();
});
document.addEventListener("DOMContentLoaded", markPorts);

document.addEventListener("change", (e) => {
  const pick = e.target.closest(".proxyro-other [data-field=credential]");
  if (pick) pick.closest(".proxyro-other").querySelector(".proxyro-new").hidden = pick.value !== "new";
});

// A new credential goes into the password box first, then the OB cluster takes it; if the
// cluster refuses it, the new credential is taken out of the box again.
async function newProxyro(box) {
  const field = (name) => box.querySelector(`[data-field=${name}]`);
  const name = field("new-name").value.trim();
  const body = { name, targetType: "OB_CLUSTER", authType: "PASSWORD", username: "proxyro" };
  const made = await callApi("POST", "/api/v2/credentials", { ...body, password: field("new-password").value });
  return { id: made.id, name };
}

async function setProxyro(button) {
  const box = button.closest(".proxyro-other");
  const pick = box.querySelector("[data-field=credential]");
  if (!(await confirmed(button.dataset.confirm))) return;
  flash("");
  let made = null;
  try {
    made = pick.value === "new" ? await newProxyro(box) : null;
    const { id, name } = made || { id: pick.value, name: pick.selectedOptions[0].text };
    await callApi("PATCH", button.dataset.url, { proxyroCredentialId: Number(id) });
    if (made) {
      pick.add(new Option(name, id, true, true), pick.options.length - 1);
      box.querySelector(".proxyro-new").hidden = true;
    }
    const link = button.closest(".ob-link");
    link.querySelector(".proxyro-name").textContent = name;
    const done = document.getElementById("wizard-links").dataset.done;
    flash(done.replace("{cluster}", link.dataset.obName).replace("{credential}", name), "ok");
  } catch (error) {
    flash(error.message);
    if (made) await callApi("DELETE", "/api/v2/credentials/" + made.id).catch(() => null);
  }
}

// --- package upload with progress -----------------------------------------------------------

function upload(form) {
  const bar = form.querySelector("progress");
  const request = new XMLHttpRequest();
  request.open("POST", form.dataset.url);
  request.setRequestHeader("X-CSRF-Token", csrf());
  request.upload.addEventListener("progress", (e) => {
    if (e.lengthComputable) bar.value = e.loaded / e.total;
  });
  request.addEventListener("load", () => {
    let envelope = null;
    try {
      envelope = JSON.parse(request.responseText);
    } catch (_) {
      envelope = null;
    }
    if (envelope && envelope.successful) {
      bar.value = 1;
      location.reload();
    } else {
      flash(envelope && envelope.error ? envelope.error.message : request.statusText);
    }
  });
  request.addEventListener("error", () => flash(request.statusText || "upload failed"));
  bar.hidden = false;
  bar.value = 0;
  flash("");
  request.send(new FormData(form));
}

// --- task page: live graph and the selected subtask -----------------------------------------

function selectSubtask(id) {
  const panel = document.getElementById("subtask");
  panel.dataset.selected = id;
  markSelected();
  htmx.ajax("GET", panel.dataset.base + id, { target: "#subtask", swap: "innerHTML" });
}

function markSelected() {
  const panel = document.getElementById("subtask");
  if (!panel) return;
  document.querySelectorAll("[data-subtask]").forEach((node) => {
    node.classList.toggle("selected", node.dataset.subtask === panel.dataset.selected);
  });
}

let pending = null;
function refreshTask() {
  // Events come in bursts (a subtask's status, then its successor's): one refresh per burst.
  if (pending) return;
  pending = setTimeout(() => {
    pending = null;
    htmx.trigger("#live", "refresh");
    const panel = document.getElementById("subtask");
    if (panel && panel.dataset.selected) selectSubtask(panel.dataset.selected);
  }, 150);
}

// A wide graph (many hosts) opens scrolled to its middle, where the shared first and last
// subtasks are; a live refresh keeps where the user scrolled to.
let graphScroll = null;
document.addEventListener("htmx:beforeSwap", () => {
  const graph = document.querySelector(".graph");
  if (graph) graphScroll = [graph.scrollLeft, graph.scrollTop];
});

function placeGraph() {
  const graph = document.querySelector(".graph");
  if (!graph) return;
  if (graphScroll) [graph.scrollLeft, graph.scrollTop] = graphScroll;
  else graph.scrollLeft = (graph.scrollWidth - graph.clientWidth) / 2;
}

document.addEventListener("htmx:afterSwap", () => {
  markSelected();
  placeGraph();
});
document.addEventListener("DOMContentLoaded", placeGraph);

function followTask() {
  const live = document.getElementById("live");
  if (!live || !live.dataset.events) return;
  const events = new EventSource(live.dataset.events);
  ["task", "subtask"].forEach((kind) => events.addEventListener(kind, refreshTask));
  events.addEventListener("end", () => {
    events.close();
    refreshTask();
  });
}

document.addEventListener("DOMContentLoaded", followTask);
