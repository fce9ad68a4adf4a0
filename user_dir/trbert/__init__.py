"""TR-BERT: RL-learned dynamic token reduction for long texts."""
