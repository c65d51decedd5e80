"""
Disk to index: listing the package directories, describing each file
(hashes, core metadata), the description cache, the worker processes, and
the watcher service that keeps the index in step with the disk.
"""
