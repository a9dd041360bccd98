//! A conversation with the model: history kept in order, the oldest turns dropped when the
//! prompt would not leave room for the answer.

use quire_runtime::{
    CancelToken, ChatMessage, Generation, Model, SamplingParams, StopReason, TokenSink,
};

use crate::error::Result;

/// An in-memory chat: optional system prompt plus alternating user/assistant turns.
#[derive(Debug, Clone, Default)]
pub struct ChatSession {
    system: Option<String>,
    turns: Vec<ChatMessage>,
}

impl ChatSession {
    pub fn new(system: Option<String>) -> Self {
        Self {
            system,
            turns: Vec::new(),
        }
    }

    pub fn clear(&mut self) {
        self.turns.clear();
    }

    /// The messages that fit the context with `reserve` tokens left for the answer,
    /// newest kept first; the system prompt always stays.
    fn fitting(&self, model: &Model, user: &str, reserve: usize) -> Result<Vec<u32>> {
        let mut keep_from = 0;
        loop {
            let mut msgs: Vec<ChatMessage> = self.system.iter().map(ChatMessage::system).collect();
            msgs.extend(self.turns[keep_from..].iter().cloned());
            msgs.push(ChatMessage::user(user));
            let ids = model.encode_chat(&msgs)?;
            if ids.len() + reserve <= model.context_size() || keep_from >= self.turns.len() {
                return Ok(ids);
            }
            // Drop the oldest exchange (user + assistant) together.
            keep_from = (keep_from + 2).min(self.turns.len());
        }
    }

    /// Sends `user` and streams the reply to `sink`. The exchange joins the history unless
    /// the generation was cancelled before producing anything.
    pub fn send(
        &mut self,
        model: &mut Model,
        user: &str,
        params: &SamplingParams,
        cancel: &CancelToken,
        sink: &mut dyn TokenSink,
    ) -> Result<Generation> {
        let prompt = self.fitting(model, user, params.max_tokens)?;
        let out = model.generate(&prompt, params, cancel, sink)?;
        if !(out.stop == StopReason::Cancelled && out.ids.is_empty()) {
            self.turns.push(ChatMessage::user(user));
            self.turns.push(ChatMessage::assistant(out.text.trim()));
        }
        Ok(out)
    }
}
