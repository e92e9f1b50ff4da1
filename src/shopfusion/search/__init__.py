"""Search stage: lexical and semantic retrieval fused into one ranked, explained result list."""
