"""Intake: an event as Camio POSTs it, checked before anything is stored.

Owns the event's parsing and limits (`event`) and image bytes as they arrive (`images`: base64
in, checked bytes out, decompression bombs refused, decoding at a reduced scale, which the
worker's loader uses too).

May import: callbacks (the allowed hosts) (and the shared bottom).
"""
