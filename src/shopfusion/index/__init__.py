"""Index stage: lexical (BM25) and vector indexes, each behind one interface, saved in the workspace."""
