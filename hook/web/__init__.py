"""The web: Camio's POSTs taken in and stored, the pending list, results, pictures, the live page.

Owns the Bottle app (`app`, built by `create_app`; `hook.wsgi:app` is the entry; which key a
request carries: `keys`; how many large events it takes in at once: `admission`), the results
and pictures routes (`results`; pictures drawn off the event loop: `offload`), the live page
(`view`: the list, filtered and paged; `task_page`: one event; `html`: what both render with;
`static/`), its retry and forget forms (`actions`: HOOK_API_KEY and same origin only), JSON
answers (`answers`), and gunicorn's gevent worker that lets the app close a connection
(`gevent_worker`, `connection`). It never imports the worker: the two share only MongoDB and
the wake-up ring.

May import: config, intake, store, metrics, callbacks, pictures (and the shared bottom).
"""
