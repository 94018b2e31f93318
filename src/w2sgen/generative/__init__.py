"""Generative weak-to-strong alignment (`w2s generate`): the refinement paper's experiments.

A weak model, prompted with a target behaviour (a persona, explanations with analogies, maths
solutions), answers questions; the strong model is aligned to that behaviour by fine-tuning on
training targets made from the weak answers (naive, ICL refinement, Infer-and-Respond,
Ask-to-Improve), and the aligned students, the weak model and the unaltered strong model are
scored on held-out questions by an LLM judge (content and style), exact match (maths) and cheap
marker proxies. Modules, in the order the pipeline uses them:

  config.py    the typed config (YAML + key=value overrides)
  backends.py  BACKENDS: local HF causal LMs and OpenAI-compatible endpoints
  tasks.py     GEN_TASKS: question sets with a target behaviour; JSONL question files
  methods.py   GEN_METHODS: how training targets are made from the weak answers
  sft.py       LoRA supervised fine-tuning, loss on answer tokens only
  judge.py     the versioned LLM-judge prompts and the score parser
  scoring.py   exact match, marker rates, bootstrap intervals
  pipeline.py  the run, top to bottom, every expensive step cached
  report.py    the results table and the paper's bar
"""
