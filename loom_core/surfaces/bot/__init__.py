"""Chat bots over the plane (spec §7): ``loom bot telegram``. A bot is a client of the HTTP plane and never opens
a store; :mod:`.telegram` holds the handlers, :mod:`.views` the text, :mod:`.state` the state file and
:mod:`.watch` the 4 s watch loop."""
