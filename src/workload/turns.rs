//! A conversation line's own fields: the user turns after its first request and its canned tool
//! results, read with the line.

use serde_json::{Map, Value, json};

/// What a conversation line adds to its first request body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConversationSpec {
    /// The user turns after the first request, in order: each a string or a whole message object
    /// (`{"role": "user", "content": [...]}`).
    pub turns: Vec<Value>,
    /// Canned results by tool name: a string is sent as is, anything else as its JSON text.
    pub tool_outputs: Map<String, Value>,
}

impl ConversationSpec {
    /// Reads a line's `turns` (an array) and `tool_outputs` (an object), as JSON text.
    ///
    /// # Errors
    /// What is wrong, for the line's `invalid_input` record.
    pub fn parse(turns: Option<&str>, tool_outputs: Option<&str>) -> Result<Self, String> {
        let turns = match turns.map(serde_json::from_str::<Value>) {
            None | Some(Ok(Value::Null)) => Vec::new(),
            Some(Ok(Value::Array(turns))) => turns,
            Some(_) => {
                return Err(
                    "\"turns\" must be an array of user messages (strings or message objects)"
                        .to_string(),
                );
            }
        };
        if let Some(bad) = turns.iter().position(|t| !(t.is_string() || t.is_object())) {
            return Err(format!(
                "\"turns\"[{bad}] must be a string or a message object"
            ));
        }
        let tool_outputs = match tool_outputs.map(serde_json::from_str::<Value>) {
            None | Some(Ok(Value::Null)) => Map::new(),
            Some(Ok(Value::Object(outputs))) => outputs,
            Some(_) => {
                return Err(
                    "\"tool_outputs\" must be an object of results by tool name".to_string()
                );
            }
        };
        Ok(ConversationSpec {
            turns,
            tool_outputs,
        })
    }

    /// The result a call of `tool` gets: the line's canned one, else the documented default.
    pub fn output_for(&self, tool: &str) -> String {
        match self.tool_outputs.get(tool) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => json!({"tool": tool, "result": "ok", "note": "llmvolley default result: the line has no tool_outputs entry for this tool"}).to_string(),
        }
    }
}
