"""Writes tests/fixtures/bpe-tokenizer.json: a byte-level BPE tokenizer.json (the kind Llama 3,
Qwen and GPT-2 ship) with a 1,000-token vocabulary trained on the generator's corpus, so tests can
count with a real Hugging Face BPE tokenizer without downloading one.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install tokenizers
    /tmp/venv/bin/python scripts/make-bpe-fixture.py
"""
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

root = Path(__file__).resolve().parent.parent
tokenizer = Tokenizer(models.BPE())
tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tokenizer.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(
    vocab_size=1000,
    initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    show_progress=False,
)
tokenizer.train([str(root / "assets/corpus/around-the-world-in-80-days.txt")], trainer)
tokenizer.save(str(root / "tests/fixtures/bpe-tokenizer.json"))
