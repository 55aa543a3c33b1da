"""The check library: check specs by kind, probes, the YAML pack loader and the built-in packs."""
