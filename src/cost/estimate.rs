//! `llmvolley estimate`: input tokens counted locally, output tokens assumed, dollars per model.
