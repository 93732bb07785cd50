# Runs at once, each into its own log: a line as each one ends and a progress line every
# RUNS_PROGRESS_SECONDS meanwhile (pytest's own percentage, read from its log), then every
# log in turn. Sourced by scripts/test.sh. Usage:
#   start NAME COMMAND...   (through env, so COMMAND may begin with VAR=value)
#   finish                  (returns 1 when a run failed; pytest's 5, "no test selected", is no failure)

RUNS_PROGRESS_SECONDS=${RUNS_PROGRESS_SECONDS:-30}
runs_dir=$(mktemp -d)
trap 'rm -rf "$runs_dir"' EXIT
run_names=()

start() {
  local name=$1
  shift
  run_names+=("$name")
  # The exit status lands in a file of its own: the polling below reads it, not `wait`, so that
  # it can print progress while it waits.
  (
    status=0
    env "$@" >"$runs_dir/$name.log" 2>&1 || status=$?
    echo "$status" >"$runs_dir/$name.status"
  ) &
}

elapsed() {
  printf '%dm%02ds' $((SECONDS / 60)) $((SECONDS % 60))
}

# How far NAME's pytest got: its last "[ 45%]", or what it printed last when it has none.
progress_of() {
  local log=$runs_dir/$1.log percent
  percent=$(grep -o '\[ *[0-9]*%\]' "$log" 2>/dev/null | tail -n1 | tr -d '[] ')
  echo "${percent:-started}"
}

finish() {
  local name status shown=() failed=() last=$SECONDS
  declare -A ended=()
  while [ ${#ended[@]} -lt ${#run_names[@]} ]; do
    sleep 1
    for name in "${run_names[@]}"; do
      [ -z "${ended[$name]:-}" ] && [ -f "$runs_dir/$name.status" ] || continue
      status=$(cat "$runs_dir/$name.status")
      ended[$name]=$status
      if [ "$status" = 0 ] || [ "$status" = 5 ]; then
        echo "== $(elapsed) $name passed: $(tail -n1 "$runs_dir/$name.log")"
      else
        failed+=("$name")
        echo "== $(elapsed) $name FAILED (exit $status): $(tail -n1 "$runs_dir/$name.log")"
      fi
    done
    if [ $((SECONDS - last)) -ge "$RUNS_PROGRESS_SECONDS" ] && [ ${#ended[@]} -lt ${#run_names[@]} ]; then
      last=$SECONDS
      shown=()
      for name in "${run_names[@]}"; do
        [ -n "${ended[$name]:-}" ] || shown+=("$name $(progress_of "$name")")
      done
      echo "== $(elapsed) running: $(IFS=,; echo "${shown[*]}" | sed 's/,/, /g')"
    fi
  done
  for name in "${run_names[@]}"; do
    echo "== tests on $name"
    cat "$runs_dir/$name.log"
  done
  if [ ${#failed[@]} -gt 0 ]; then
    echo "== FAILED on: ${failed[*]}"
    return 1
  fi
}
