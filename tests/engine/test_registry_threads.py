"""The first lookups of the registry may come from several threads at once (the operator plans resources
in a thread pool): none of them may see a half-filled registry."""

import json
import subprocess
import sys


def test_concurrent_first_lookups_see_every_plugin():
    code = """
import threading
from s1mple_engine import registry
seen = []
barrier = threading.Barrier(8)
def look():
    barrier.wait()
    seen.append(len(registry.all_plugins()))
threads = [threading.Thread(target=look) for _ in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
import json
print(json.dumps(sorted(set(seen))))
"""
    for _ in range(3):  # a fresh interpreter each time: the race is on the very first import
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        sizes = json.loads(out)
        assert len(sizes) == 1 and sizes[0] > 30, sizes
