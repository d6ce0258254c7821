"""Chat bots over the plane (spec §7): ``loom bot telegram``. A bot is a client of the HTTP plane and never opens
a store: :mod:`.telegram` holds the application and its plumbing, :mod:`.handlers` the commands and buttons,
:mod:`.views` the text, :mod:`.plane` the link to the plane, :mod:`.state` the state file and :mod:`.watch`
the 4 s watch loop."""
