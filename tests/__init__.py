"""The test suite of ``langchain-nanobanana`` (a package, so tests share ``tests.helpers``)."""
