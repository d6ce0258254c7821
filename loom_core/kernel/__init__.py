"""The pure state machine: types, the tick (fsm), invariants, gates, parse, prompt, ids. No I/O, no clock."""
