"""
The pure model: distribution file names, projects and files, pages and their ETags.

Nothing here imports the reactor: the index is changed by the scanner and
the upload store, and read by the web resources.
"""
