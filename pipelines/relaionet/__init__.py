"""reLAIONet: LAION images matched to ImageNet-1k classes by their captions (LAIONet's recipe), then proofread."""
