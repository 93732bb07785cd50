"""OCP's OBProxy tasks. Each task's module owns its DAG (`build(...) -> Flow`), which services
call and submit; the steps the tasks share are in `steps`, what they do to one OBProxy in `acts`,
the task names and context keys in `keys`.

    install     Install obproxy         a cluster create, obproxies batchAdd
    offline     Offline obproxy         obproxies delete, cluster delete
    restart     Restart obproxy         one obproxy after the other
    parameters  Update obproxy parameter  (extension) runtime in parallel, startup by restarting
    upgrade     Upgrade obproxy         one obproxy after the other, old version kept until done
    takeover    Take over obproxy       adopt one OBProxy already running
"""
