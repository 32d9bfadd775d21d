"""Installing hotline on a server: `hotline init` lays out a settings directory from the files
the package ships (engine.assets)."""
