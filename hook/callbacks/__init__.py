"""Callbacks: what goes out to a receiver, where it may go, and what its answer means.

Owns Camio's label body (`labels`), the hosts callbacks may go to (`hosts`), the POST and its
verdict (`post`), an exchange bounded whole in time (`deadline`), extra headers and Standard
Webhooks signatures (`outbound`, `signing`).
Nothing here knows the store: the worker settles what a POST came to.

May import: detect (its light types) (and the shared bottom).
"""
