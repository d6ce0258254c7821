from loom_core.surfaces.mcp import main

main()
