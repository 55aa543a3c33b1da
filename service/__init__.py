"""What both daemons share: the component lifecycle, log set-up, the clock, pid files and reload requests."""
