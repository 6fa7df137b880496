"""The catalog's pure logic.

The lifecycle rules live in :mod:`slidestream_contracts.lifecycle`, because every projection of
slide state (this catalog, the upload API's view for partners) must agree on them.
"""
