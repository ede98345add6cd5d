"""Rules per camera: which labels a camera reports, at what score, where in the frame.

Owns the TOML rules file (`parsing`: read and checked, errors with line numbers), one camera's
entry (`camera`), zones as polygons (`zones`), and the rules applied to detections (`ruleset`:
`Rules`, and `RulesFile`, which reads the file again when it changes).

May import: detect (its light types) (and the shared bottom).
"""
