"""loadbay's portable import engine.

Plain Python on arro3: the same code runs in the end user's browser (Pyodide, in a
Web Worker) and on the server, so a file is judged by one set of rules everywhere.
No network, no server imports.
"""
