"""The demo driver: runs the real definitions period by period, as the daemon would."""
