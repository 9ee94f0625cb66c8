//! The syntax tree of rule files: what was written, with where it was written.

use std::path::PathBuf;

/// A rule file's index in the [`Sources`](super::source::Sources).
pub type FileId = usize;

/// A byte range in one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    /// The file.
    pub file: FileId,
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// A name as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Name {
    /// The text.
    pub text: String,
    /// Where.
    pub span: Span,
}

/// A literal or a name (a constant, or a word such as `upper`) in a value position.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueKind {
    /// `500`.
    Int(i64),
    /// `3.5`, `-1`, or `2%` as `0.02`.
    Float(f64),
    /// `5m`, in nanoseconds.
    Duration(i64),
    /// `true`, `false`.
    Bool(bool),
    /// `"text"`.
    Str(String),
    /// A constant or a word.
    Name(String),
}

impl ValueKind {
    /// The number an integer or float literal holds; `None` for any other value.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            ValueKind::Int(v) => Some(*v as f64),
            ValueKind::Float(v) => Some(*v),
            _ => None,
        }
    }
}

/// A value with its place.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    /// What was written.
    pub kind: ValueKind,
    /// Where.
    pub span: Span,
}

/// An arithmetic operator of a feature expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
}

/// A feature expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal.
    Value(Value),
    /// A field, feature or constant.
    Name(Name),
    /// `-e`.
    Neg(Box<Expr>, Span),
    /// `a + b` and friends.
    Binary(BinOp, Box<Expr>, Box<Expr>, Span),
    /// `pct_change(close)`.
    Call(Name, Vec<Expr>, Span),
}

impl Expr {
    /// Where the expression was written.
    pub fn span(&self) -> Span {
        match self {
            Expr::Value(v) => v.span,
            Expr::Name(n) => n.span,
            Expr::Neg(_, s) | Expr::Binary(_, _, _, s) | Expr::Call(_, _, s) => *s,
        }
    }
}

/// How a detector that fits learns.
#[derive(Debug, Clone, PartialEq)]
pub enum Training {
    /// `train on first N`.
    First(u64, Span),
    /// `train on 1d`.
    For(i64, Span),
    /// `refit every 1d`.
    Refit(i64, Span),
}

/// `detector name = family.detector(params) on inputs training`.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorDef {
    /// Its name in the rules.
    pub name: Name,
    /// The plugin family.
    pub family: Name,
    /// The detector in the family.
    pub detector: Name,
    /// `(name, value)` parameters.
    pub params: Vec<(Name, Value)>,
    /// Fields or features it reads.
    pub inputs: Vec<Name>,
    /// Training clauses.
    pub training: Vec<Training>,
    /// `threshold family.detector(params)`: the detector that judges this one's raw scores.
    pub threshold: Option<ThresholdDef>,
    /// The whole definition.
    pub span: Span,
}

/// A threshold clause: a one-input detector fed the raw scores of the detector it follows,
/// whose normalised score and verdict replace that detector's.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdDef {
    /// The plugin family.
    pub family: Name,
    /// The detector in the family.
    pub detector: Name,
    /// `(name, value)` parameters.
    pub params: Vec<(Name, Value)>,
    /// The whole clause.
    pub span: Span,
}

/// How an ensemble's members vote.
#[derive(Debug, Clone, PartialEq)]
pub enum VoteKind {
    /// At least one member says anomaly.
    Any,
    /// Every member says anomaly.
    All,
    /// More than half say anomaly.
    Majority,
    /// At least k say anomaly.
    AtLeast(Value),
    /// Weighted share of anomalous members at or above a threshold.
    Weighted(Vec<Value>, Value),
    /// An aggregate of normalised scores at or above a threshold.
    Score(ScoreAgg, Value),
}

/// How normalised scores are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreAgg {
    /// Mean.
    Mean,
    /// Maximum.
    Max,
    /// Median.
    Median,
}

/// An ensemble's vote.
#[derive(Debug, Clone, PartialEq)]
pub struct Vote {
    /// The rule.
    pub kind: VoteKind,
    /// The members, detectors or ensembles.
    pub members: Vec<Name>,
    /// Where.
    pub span: Span,
}

/// What a severity condition compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// The ensemble's score.
    Score,
    /// How many members say anomaly.
    Votes,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `>=`
    Ge,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `<`
    Lt,
    /// `==`
    Eq,
}

/// A severity condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// Any of these.
    Or(Vec<Cond>),
    /// All of these.
    And(Vec<Cond>),
    /// Not this.
    Not(Box<Cond>),
    /// This member says anomaly.
    Member(Name),
    /// `score >= 0.9`.
    Compare(Measure, Cmp, Value, Span),
}

/// `level when condition` or `level otherwise`.
#[derive(Debug, Clone, PartialEq)]
pub struct SeverityArm {
    /// The level, as written.
    pub level: Name,
    /// `None` for `otherwise`.
    pub cond: Option<Cond>,
    /// The arm.
    pub span: Span,
}

/// `ensemble name { vote = ...  severity { ... } }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ensemble {
    /// Its name.
    pub name: Name,
    /// Its vote.
    pub vote: Vote,
    /// Its severity arms, in order.
    pub severity: Vec<SeverityArm>,
    /// The whole block.
    pub span: Span,
}

/// How long a condition must hold before an alert fires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Hold {
    /// For N consecutive events.
    Events(u64),
    /// For a duration, in nanoseconds.
    Duration(i64),
}

/// A notification target: `log`, `file("path")`, `webhook("url")`.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The kind.
    pub kind: Name,
    /// Its argument.
    pub arg: Option<String>,
}

/// `alert ensemble { when ...  cooldown ...  group by ...  notify ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The ensemble it watches.
    pub name: Name,
    /// The level that triggers it, and how long it must hold.
    pub when: Option<(Name, Option<Hold>)>,
    /// Quiet time after firing, in nanoseconds, and whether it is kept per key.
    pub cooldown: Option<(i64, bool)>,
    /// Grouping fields.
    pub group_by: Vec<Name>,
    /// Targets.
    pub notify: Vec<Target>,
    /// The whole block.
    pub span: Span,
}

/// What a test expects.
#[derive(Debug, Clone, PartialEq)]
pub enum Expected {
    /// The ensemble says anomaly.
    Fires,
    /// The ensemble's alert fires.
    Alerts,
    /// The ensemble's severity is this level.
    Severity(Name),
}

/// `expect name [not] fires|alerts|severity LEVEL at "time" [key "K"]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    /// The ensemble or alert.
    pub target: Name,
    /// `not`.
    pub negated: bool,
    /// What.
    pub expected: Expected,
    /// When, as written, and where.
    pub at: (String, Span),
    /// For which key.
    pub key: Option<String>,
    /// The whole clause.
    pub span: Span,
}

/// `test "name" { given input from "file"  expect ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Test {
    /// The test's name.
    pub name: String,
    /// The input block it feeds.
    pub input: Name,
    /// The data file, relative to the rule file, and where it was written.
    pub data: (String, Span),
    /// Expectations.
    pub expectations: Vec<Expectation>,
    /// The whole block.
    pub span: Span,
}

/// `input name { time = ts  key = a, b  fields = x, y }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// Its name.
    pub name: Name,
    /// The timestamp column.
    pub time: Option<Name>,
    /// Key columns: detector state is kept per key.
    pub keys: Vec<Name>,
    /// Value columns.
    pub fields: Vec<Name>,
    /// The whole block.
    pub span: Span,
}

/// One item of a rule file.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// `include "file.adr"`.
    Include(String, Span),
    /// `const NAME = literal`.
    Const(Name, Value),
    /// An input block.
    Input(Input),
    /// `feature name = expr`.
    Feature(Name, Expr),
    /// A detector.
    Detector(DetectorDef),
    /// An ensemble.
    Ensemble(Ensemble),
    /// An alert.
    Alert(Alert),
    /// A test.
    Test(Test),
}

/// One parsed rule file.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleFile {
    /// Its id.
    pub id: FileId,
    /// Its path.
    pub path: PathBuf,
    /// Its items, in order.
    pub items: Vec<Item>,
}
