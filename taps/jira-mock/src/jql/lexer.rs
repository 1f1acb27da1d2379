//! The JQL tokenizer.

use super::{JqlError, err};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    Word(String),
    Quoted(String),
    LParen,
    RParen,
    Comma,
    Op(&'static str),
    And,
    Or,
    Not,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    /// 1-based character position, for error messages.
    pub(crate) pos: usize,
}

pub(crate) fn describe(t: Option<&Token>) -> String {
    match t.map(|t| &t.tok) {
        None => "the end of the query".to_string(),
        Some(Tok::Word(w)) => format!("'{w}'"),
        Some(Tok::Quoted(q)) => format!("'\"{q}\"'"),
        Some(Tok::LParen) => "'('".to_string(),
        Some(Tok::RParen) => "')'".to_string(),
        Some(Tok::Comma) => "','".to_string(),
        Some(Tok::Op(o)) => format!("'{o}'"),
        Some(Tok::And) => "'AND'".to_string(),
        Some(Tok::Or) => "'OR'".to_string(),
        Some(Tok::Not) => "'NOT'".to_string(),
    }
}

pub(crate) fn at(t: Option<&Token>) -> String {
    match t {
        Some(t) => format!(" (line 1, character {})", t.pos),
        None => String::new(),
    }
}

pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, JqlError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let (tok, len) = match (c, two.as_str()) {
            (_, "!=") => (Tok::Op("!="), 2),
            (_, ">=") => (Tok::Op(">="), 2),
            (_, "<=") => (Tok::Op("<="), 2),
            (_, "!~") => (Tok::Op("!~"), 2),
            (_, "&&") => (Tok::And, 2),
            (_, "||") => (Tok::Or, 2),
            ('=', _) => (Tok::Op("="), 1),
            ('>', _) => (Tok::Op(">"), 1),
            ('<', _) => (Tok::Op("<"), 1),
            ('~', _) => (Tok::Op("~"), 1),
            ('&', _) => (Tok::And, 1),
            ('|', _) => (Tok::Or, 1),
            ('!', _) => (Tok::Not, 1),
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            (',', _) => (Tok::Comma, 1),
            ('"' | '\'', _) => {
                let quote = c;
                let mut s = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => {
                            return err(format!(
                                "Error in the JQL Query: The quoted string '{s}' has not been completed. (line 1, character {pos})"
                            ));
                        }
                        Some('\\') => {
                            if let Some(&n) = chars.get(j + 1) {
                                s.push(n);
                            }
                            j += 2;
                        }
                        Some(&ch) if ch == quote => break,
                        Some(&ch) => {
                            s.push(ch);
                            j += 1;
                        }
                    }
                }
                (Tok::Quoted(s), j + 1 - i)
            }
            _ => {
                let mut j = i;
                while j < chars.len()
                    && !chars[j].is_whitespace()
                    && !"=!<>~&|(),\"'".contains(chars[j])
                {
                    j += 1;
                }
                let word: String = chars[i..j].iter().collect();
                let tok = match word.to_ascii_uppercase().as_str() {
                    "AND" => Tok::And,
                    "OR" => Tok::Or,
                    "NOT" => Tok::Not,
                    _ => Tok::Word(word),
                };
                (tok, j - i)
            }
        };
        out.push(Token { tok, pos });
        i += len;
    }
    Ok(out)
}
