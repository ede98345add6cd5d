"""The worker: claimed tasks in, Camio labels out at their callback_url.

    fetch      claim due tasks, read their images' bytes (`loading`)
    lanes      decode, run a detector, apply the rules, store the labels (`labeling`;
               hook.config.lanes plans how many)
    delivery   POST to callback_url (`delivery`), then settle (`settling`): done (recorded in
               batches by `completions`), retried with backoff, or failed with the reason
    beside     leases renewed (`leases`), failure reports (`reporting`), the queue's chores
               (`housekeeping`), the change feed

`pipeline` runs the stages (`Worker`), `job` says where a claimed task is, `main` composes a
worker from settings (`python worker.py`). It never imports the web.

May import: config, detect, rules, callbacks, intake, store, metrics (and the shared bottom).
"""
