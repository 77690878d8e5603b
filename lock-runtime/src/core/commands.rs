//! What Redis says of its commands (`COMMAND INFO`), kept for a client's life: enough to tell,
//! before a command is sent to run inside a script, whether Redis would refuse it there without
//! running it (an unknown command or subcommand, a wrong number of arguments, a command Redis
//! does not run in scripts) or run it otherwise than when sent directly (a blocking one).
//!
//! Lock-checked writes (`family/exec.rs`) check a whole pipeline against it so that one malformed
//! command leaves the pipeline unrun, as `EXEC` discards a transaction, rather than half run.
//! The table fills lazily: one read of the names a pipeline uses that it does not know yet, so
//! a client pays one round trip per new command name, once. It is of one server version: the
//! script that runs the commands compares that version with its server's, and a client that
//! finds another (after a failover to an upgraded node) starts a new table for it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use redis::{FromRedisValue, ParsingError, Value};

use crate::{core::reply::Items, transport::sync::lock_ignoring_poison};

/// How many names a table keeps at most: Redis has a few hundred commands; past this, names a
/// program made up (each one an error) start a new table rather than grow it without end.
const MOST_NAMES: usize = 4096;

/// The descriptions a client has read, behind a lock held only to swap them.
#[derive(Debug, Default)]
pub(crate) struct CommandTable(Mutex<Arc<Table>>);

impl CommandTable {
    /// The descriptions as they stand: a cheap clone, unchanged by later reads.
    pub(crate) fn snapshot(&self) -> Arc<Table> {
        Arc::clone(&lock_ignoring_poison(&self.0))
    }

    /// Keeps what version `version` said of `names`, in the same order as `described` (`None`
    /// for a name it does not know). Descriptions of another version are dropped.
    pub(crate) fn learn(&self, version: &str, names: &[String], described: Vec<Option<Command>>) {
        let mut current = lock_ignoring_poison(&self.0);
        let mut table = if current.version.as_deref() == Some(version)
            && current.commands.len() + names.len() <= MOST_NAMES
        {
            Table::clone(&current)
        } else {
            Table::of(version)
        };
        for (name, command) in names.iter().zip(described) {
            table.commands.insert(name.clone(), command.map(Arc::new));
        }
        *current = Arc::new(table);
    }

    /// Starts an empty table for `version`, unless the table is of it already: a server of
    /// that version answered, and what the table says of another no longer holds.
    pub(crate) fn expect(&self, version: &str) {
        let mut current = lock_ignoring_poison(&self.0);
        if current.version.as_deref() != Some(version) {
            *current = Arc::new(Table::of(version));
        }
    }
}

/// What one server version said of the commands asked about.
#[derive(Debug, Default, Clone)]
pub(crate) struct Table {
    /// `None` until the first read.
    version: Option<Arc<str>>,
    /// By lower-case name; `None` for a name the server does not know.
    commands: HashMap<String, Option<Arc<Command>>>,
}

impl Table {
    fn of(version: &str) -> Self {
        Self {
            version: Some(Arc::from(version)),
            commands: HashMap::new(),
        }
    }

    /// The server version the descriptions are of, once read.
    pub(crate) fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// Which of `names` (lower case) were never asked about, each once.
    pub(crate) fn missing<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut missing: Vec<String> = names
            .into_iter()
            .filter(|name| self.version.is_none() || !self.commands.contains_key(*name))
            .map(str::to_owned)
            .collect();
        missing.sort_unstable();
        missing.dedup();
        missing
    }

    /// The command called `name` (lower case), if the server knows it; `None` also for a name
    /// never asked about.
    pub(crate) fn command(&self, name: &str) -> Option<&Command> {
        self.commands.get(name)?.as_deref()
    }
}

/// One command as `COMMAND INFO` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Command {
    /// Redis's arity: the exact number of arguments (the name included) when positive, the
    /// least number when negative.
    arity: i64,
    /// Its flags, lower case (`write`, `noscript`, `blocking`, ...).
    flags: Vec<String>,
    /// Whether any argument can be a key.
    has_keys: bool,
    /// A container command's subcommands (`CONFIG GET`), by lower-case subcommand name.
    subcommands: HashMap<String, Command>,
}

impl Command {
    /// Whether a call of `count` arguments, the name included, fits the arity.
    pub(crate) fn takes(&self, count: usize) -> bool {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        if self.arity >= 0 {
            count == self.arity
        } else {
            count >= -self.arity
        }
    }

    /// The arity as Redis gives it.
    pub(crate) fn arity(&self) -> i64 {
        self.arity
    }

    /// Whether `COMMAND INFO` lists `flag` (lower case) for it.
    pub(crate) fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|own| own == flag)
    }

    /// Whether any of its arguments can be a key.
    pub(crate) fn has_keys(&self) -> bool {
        self.has_keys
    }

    /// Whether it is a container of subcommands, such as `CONFIG` or `OBJECT`.
    pub(crate) fn has_subcommands(&self) -> bool {
        !self.subcommands.is_empty()
    }

    /// Its subcommand `name` (lower case), if it has one.
    pub(crate) fn subcommand(&self, name: &str) -> Option<&Command> {
        self.subcommands.get(name)
    }
}

impl FromRedisValue for Command {
    /// One entry of `COMMAND INFO` (Redis 7): name, arity, flags, first key, last key, key step,
    /// ACL categories, tips, key specifications, subcommands (entries of the same shape, named
    /// `container|subcommand`). Redis 6.2 stops after the ACL categories: it describes no
    /// subcommand (a container's subcommand is checked by the command itself as it runs, as
    /// Redis 6.2 does in a `MULTI` too).
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let mut items = Items::new(value, "COMMAND INFO")?;
        let _name: String = items.next()?;
        let arity = items.next()?;
        let flags: Vec<String> = items.next()?;
        let first_key: i64 = items.next()?;
        let _last_key: i64 = items.next()?;
        let _step: i64 = items.next()?;
        let _categories: Value = items.next()?;
        let (key_specs, subcommands) = if items.is_empty() {
            (Vec::new(), Value::Array(Vec::new()))
        } else {
            let _tips: Value = items.next()?;
            let key_specs: Vec<Value> = items.next()?;
            (key_specs, items.next()?)
        };
        let subcommands: Vec<(String, Command)> = Vec::<Value>::from_redis_value(subcommands)?
            .into_iter()
            .map(|entry| {
                let name = match &entry {
                    Value::Array(fields) => fields
                        .first()
                        .cloned()
                        .map(String::from_redis_value)
                        .transpose()?
                        .unwrap_or_default(),
                    _ => String::new(),
                };
                let name = name
                    .rsplit_once('|')
                    .map_or(name.as_str(), |(_, sub)| sub)
                    .to_ascii_lowercase();
                Ok((name, Command::from_redis_value(entry)?))
            })
            .collect::<Result<_, ParsingError>>()?;
        let flags: Vec<String> = flags
            .into_iter()
            .map(|flag| flag.to_ascii_lowercase())
            .collect();
        let has_keys =
            first_key != 0 || !key_specs.is_empty() || flags.iter().any(|f| f == "movablekeys");
        Ok(Self {
            arity,
            flags,
            has_keys,
            subcommands: subcommands.into_iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::reply::text;

    fn entry(name: &str, arity: i64, flags: &[&str], first_key: i64, subs: Vec<Value>) -> Value {
        Value::Array(vec![
            text(name),
            Value::Int(arity),
            Value::Array(
                flags
                    .iter()
                    .map(|flag| Value::SimpleString((*flag).to_owned()))
                    .collect(),
            ),
            Value::Int(first_key),
            Value::Int(first_key),
            Value::Int(i64::from(first_key != 0)),
            Value::Array(vec![]),
            Value::Array(vec![]),
            Value::Array(vec![]),
            Value::Array(subs),
        ])
    }

    #[test]
    fn command_info_is_read_with_its_subcommands() {
        let set = Command::from_redis_value(entry("set", -3, &["write", "denyoom"], 1, vec![]))
            .expect("decodes");
        assert!(set.takes(3) && set.takes(5) && !set.takes(2));
        assert!(set.has_keys() && set.has_flag("denyoom") && !set.has_flag("noscript"));
        let script = Command::from_redis_value(entry(
            "script",
            -2,
            &[],
            0,
            vec![entry("script|exists", -3, &["NOSCRIPT"], 0, vec![])],
        ))
        .expect("decodes");
        assert!(script.has_subcommands() && !script.has_keys());
        let exists = script.subcommand("exists").expect("a subcommand");
        assert!(exists.has_flag("noscript") && exists.takes(4) && !exists.takes(2));
        let ping =
            Command::from_redis_value(entry("ping", -1, &["fast"], 0, vec![])).expect("decodes");
        assert!(ping.takes(1) && ping.takes(2) && !ping.has_subcommands());
    }

    #[test]
    fn command_info_of_redis_6_2_has_no_subcommands() {
        let mut fields = match entry("config", -2, &["admin"], 0, vec![]) {
            Value::Array(fields) => fields,
            other => panic!("an entry is an array: {other:?}"),
        };
        fields.truncate(7);
        let config = Command::from_redis_value(Value::Array(fields)).expect("a 6.2 entry");
        assert!(config.takes(3) && !config.has_subcommands() && !config.has_keys());
    }

    #[test]
    fn a_table_is_of_one_version() {
        let table = CommandTable::default();
        assert_eq!(
            table.snapshot().missing(["set"]),
            ["set"],
            "nothing read yet"
        );
        let set = Command::from_redis_value(entry("set", -3, &[], 1, vec![])).expect("decodes");
        table.learn(
            "7.0.15",
            &["set".to_owned(), "nope".to_owned()],
            vec![Some(set), None],
        );
        let read = table.snapshot();
        assert_eq!(read.version(), Some("7.0.15"));
        assert!(
            read.missing(["set", "nope"]).is_empty(),
            "unknown names are kept"
        );
        assert!(read.command("set").is_some() && read.command("nope").is_none());
        table.expect("7.0.15");
        assert!(
            table.snapshot().command("set").is_some(),
            "the same version"
        );
        table.expect("7.2.4");
        assert_eq!(
            table.snapshot().missing(["set"]),
            ["set"],
            "another version"
        );
    }
}
