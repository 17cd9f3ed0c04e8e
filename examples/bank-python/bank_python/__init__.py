"""bank-python: the kubetx example participant in Python, the twin of examples/bank-go.

One bank, whose accounts live in PostgreSQL, serving the classic transfer's
two halves (TransOut, TransIn) as TCC and as Saga through the Python SDK's
barrier. Two processes (two banks) and one DistributedTransaction make a
transfer; see README.md.
"""
