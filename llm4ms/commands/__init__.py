"""CLI sub-commands: one module each with `register(subparsers)`; `args.func(args)` runs it."""
