//! The window's language: English or Simplified Chinese, from the settings or else the system
//! locale. Every user-visible string comes from `locales/*.yml` through [`tr!`](crate::tr).
//!
//! The language travels as a value instead of rust-i18n's process-wide locale, so two windows
//! in one process (tests) can speak different languages.

/// A language the window speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Simplified Chinese.
    ZhCn,
}

impl Lang {
    /// Every language, in the order the settings list them.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::ZhCn];

    /// The locale code used in `locales/*.yml` and in the settings file.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }

    /// The language's own name, as a menu shows it.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::ZhCn => "简体中文",
        }
    }

    /// The language chosen in the settings, or the system's when none is (or it is unknown).
    pub fn choose(setting: Option<&str>) -> Lang {
        setting.and_then(Lang::from_code).unwrap_or_else(Lang::from_system)
    }

    fn from_code(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|lang| lang.code().eq_ignore_ascii_case(code))
    }

    /// The first of `LC_ALL`, `LC_MESSAGES`, `LANG` that is set decides, as for gettext.
    fn from_system() -> Lang {
        let locale = ["LC_ALL", "LC_MESSAGES", "LANG"]
            .into_iter()
            .filter_map(|name| std::env::var(name).ok())
            .find(|value| !value.is_empty())
            .unwrap_or_default();
        Lang::from_posix_locale(&locale)
    }

    /// `zh_CN.UTF-8`, `zh_SG`, `zh` → Chinese (Simplified is the only Chinese we have);
    /// everything else → English.
    fn from_posix_locale(locale: &str) -> Lang {
        if locale.get(..2).is_some_and(|lang| lang.eq_ignore_ascii_case("zh")) {
            Lang::ZhCn
        } else {
            Lang::En
        }
    }
}

/// Translates a key of `locales/*.yml` into `lang`, with optional `name = value` arguments.
#[macro_export]
macro_rules! tr {
    ($lang:expr, $key:expr) => {
        rust_i18n::t!($key, locale = $lang.code())
    };
    ($lang:expr, $key:expr, $($name:ident = $value:expr),+ $(,)?) => {
        rust_i18n::t!($key, locale = $lang.code(), $($name = $value),+)
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn posix_locales_map_to_languages() {
        assert_eq!(Lang::from_posix_locale("zh_CN.UTF-8"), Lang::ZhCn);
        assert_eq!(Lang::from_posix_locale("zh_TW"), Lang::ZhCn);
        assert_eq!(Lang::from_posix_locale("de_DE.UTF-8"), Lang::En);
        assert_eq!(Lang::from_posix_locale("C"), Lang::En);
        assert_eq!(Lang::from_posix_locale(""), Lang::En);
        assert_eq!(Lang::choose(Some("zh-cn")), Lang::ZhCn);
        assert_eq!(Lang::choose(Some("en")), Lang::En);
    }

    /// Dotted keys of a locale file (nested maps, two-space indentation).
    fn keys(text: &str) -> BTreeSet<String> {
        let mut path: Vec<String> = Vec::new();
        let mut keys = BTreeSet::new();
        for line in text.lines().filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')) {
            let depth = (line.len() - line.trim_start().len()) / 2;
            let Some((key, value)) = line.trim().split_once(':') else { continue };
            path.truncate(depth);
            path.push(key.trim_matches('"').to_string());
            if !value.trim().is_empty() {
                keys.insert(path.join("."));
            }
        }
        keys
    }

    #[test]
    fn every_language_has_every_key() {
        let en = keys(include_str!("../../locales/en.yml"));
        let zh = keys(include_str!("../../locales/zh-CN.yml"));
        assert!(en.len() > 50, "{} keys", en.len());
        assert_eq!(en.difference(&zh).collect::<Vec<_>>(), Vec::<&String>::new(), "missing in zh-CN");
        assert_eq!(zh.difference(&en).collect::<Vec<_>>(), Vec::<&String>::new(), "missing in en");
    }

    #[test]
    fn keys_translate_with_arguments() {
        assert_eq!(crate::tr!(Lang::En, "peers.unread", count = 3), "3 unread");
        assert_eq!(crate::tr!(Lang::ZhCn, "peers.unread", count = 3), "3 条未读");
    }
}
