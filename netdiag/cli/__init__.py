"""The command-line interface: one module per subcommand, each thin over one library entry point."""
