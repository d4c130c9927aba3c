"""How long the browser tests wait."""

#: Milliseconds a browser test waits for anything the server or a kernel does (a kernel to start,
#: a cell's output, a fetch or submit): long enough for a loaded machine twice as slow (a test
#: failed at 90 s under a CPU hog); it only costs time when the test fails.
SERVER_WAIT_MS = 300_000
