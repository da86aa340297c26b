//! Password rules, the same at signup, invitation and password change on the server and in the
//! app's meter: one definition, so the app never lets through what the server refuses.

pub const MIN_LEN: usize = 12;
pub const MAX_LEN: usize = 128;

/// How many of lowercase, uppercase, digits and symbols the password uses.
fn classes(password: &str) -> usize {
    [
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ]
    .iter()
    .filter(|&&present| present)
    .count()
}

const COMMON: &[&str] = &[
    "password", "passw0rd", "123456", "qwerty", "letmein", "welcome", "admin", "iloveyou", "monkey", "dragon",
    "sunshine", "football", "baseball", "master", "abc123", "changeme", "trustno1",
];

/// Checks a new password; the error says what to change. `context` holds words the password
/// must not contain (the e-mail's local part, the company's slug).
pub fn check_strength(password: &str, context: &[&str]) -> Result<(), String> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(format!("must be at least {MIN_LEN} characters long"));
    }
    if len > MAX_LEN {
        return Err(format!("must be at most {MAX_LEN} characters long"));
    }
    let classes = classes(password);
    // Long passphrases are strong without symbol soup.
    if len < 16 && classes < 3 {
        return Err("must mix at least three of: lowercase, uppercase, digits, symbols (or be 16+ characters)".into());
    }
    let distinct = {
        let mut chars: Vec<char> = password.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        chars.len()
    };
    if distinct < 5 {
        return Err("uses too few different characters".into());
    }
    let lower = password.to_lowercase();
    if COMMON.iter().any(|word| lower.contains(word)) {
        return Err("contains a commonly used password".into());
    }
    for word in context.iter().filter(|w| w.len() >= 4) {
        if lower.contains(&word.to_lowercase()) {
            return Err("must not contain your e-mail name or the company's name".into());
        }
    }
    Ok(())
}

/// 0–3 and a word, for a strength meter: length and the mix of character classes. A score of
/// 2 or more is what [`check_strength`] asks for in length and mix.
pub fn strength(password: &str) -> (u8, &'static str) {
    let len = password.chars().count();
    let score = match (len, classes(password)) {
        (0..=7, _) => 0,
        (8..=11, _) => 1,
        (12..=15, 0..=2) => 1,
        (12..=15, 3) => 2,
        (_, 4..) | (16.., 3) => 3,
        (16.., _) => 2,
    };
    (score, ["weak", "fair", "good", "strong"][score as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(password: &str, ok: bool) {
        assert_eq!(check_strength(password, &["annsmith", "acme"]).is_ok(), ok, "{password:?}");
    }

    #[test]
    fn strength_rules_accept_strong_and_refuse_weak_passwords() {
        check("Tr0ub4dor&3x!", true);
        check("correct horse battery staple", true);
        check("short1A!", false);
        check("alllowercaseletters", true);
        check("alllowercase", false);
        check("Password1234!", false);
        check("Acme-Corp-2026!", false);
        check("aaaaaaaaaaaaaaaaaaaa", false);
    }

    #[test]
    fn the_meter_grows_with_length_and_mix() {
        for (password, score) in [("", 0), ("abc", 0), ("abcdefghij", 1), ("Abcdefgh1234", 2), ("Str0ng&Secret!", 3)] {
            assert_eq!(strength(password).0, score, "{password}");
        }
    }
}
