//! The stable codes of rule diagnostics. A code is never reused for another meaning; a
//! retired code stays in this list, marked as such.

use super::diagnostic::Level;

macro_rules! codes {
    ($( $variant:ident = $id:literal, $level:ident, $doc:literal; )*) => {
        /// A diagnostic's stable code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Code {
            $( #[doc = $doc] $variant, )*
        }

        impl Code {
            /// `E0301`, `W0701`...
            pub fn id(self) -> &'static str {
                match self { $( Code::$variant => $id, )* }
            }

            /// Whether the rules can still run.
            pub fn level(self) -> Level {
                match self { $( Code::$variant => Level::$level, )* }
            }

            /// Every code, for documentation and tests.
            pub fn all() -> &'static [Code] {
                &[$( Code::$variant, )*]
            }

            /// What the code means.
            pub fn doc(self) -> &'static str {
                match self { $( Code::$variant => $doc, )* }
            }
        }
    };
}

codes! {
    Syntax = "E0001", Error, "the text does not follow the grammar";
    IncludeMissing = "E0002", Error, "an included file cannot be read";
    IncludeCycle = "E0003", Error, "files include each other in a cycle";
    Duplicate = "E0101", Error, "a name is defined twice";
    UnknownConstant = "E0102", Error, "a value names no constant";
    InputCount = "E0103", Error, "the rules need exactly one input block";
    InputColumn = "E0104", Error, "a column is declared twice in the input";
    UnknownName = "E0201", Error, "an expression names no field, feature or constant";
    UnknownFunction = "E0202", Error, "a feature calls a function that does not exist";
    Arity = "E0203", Error, "a function gets the wrong number of arguments";
    FeatureCycle = "E0204", Error, "features depend on each other in a cycle";
    ArgumentType = "E0205", Error, "a function argument has the wrong type";
    UnknownFamily = "E0301", Error, "no loaded plugin has this family";
    UnknownDetector = "E0302", Error, "the family has no such detector";
    UnknownParam = "E0303", Error, "the detector has no such parameter";
    InvalidParam = "E0304", Error, "a parameter value has the wrong type or is out of range";
    UnknownInput = "E0305", Error, "a detector reads a column that is no field or feature";
    InputArity = "E0306", Error, "a detector gets the wrong number of input columns";
    Training = "E0307", Error, "a training clause is invalid";
    UnknownMember = "E0401", Error, "an ensemble member is no detector or ensemble";
    WeightType = "E0402", Error, "a vote weight or threshold is not a number";
    VoteRange = "E0403", Error, "a vote threshold or count is out of range";
    EnsembleCycle = "E0404", Error, "ensembles contain each other in a cycle";
    ConditionMember = "E0405", Error, "a severity condition names something that is not a member";
    UnreachableArm = "W0406", Warning, "a severity arm can never match";
    DuplicateMember = "E0407", Error, "a member is listed twice in one vote";
    UnknownEnsemble = "E0501", Error, "an alert or test names no ensemble";
    UnknownSeverity = "E0502", Error, "a severity level does not exist";
    UnknownTarget = "E0503", Error, "an alert notifies a target that does not exist";
    UnknownGroupField = "E0504", Error, "an alert groups by a column that is no key column";
    TestInput = "E0601", Error, "a test feeds an input that does not exist";
    TestData = "E0602", Error, "a test's data file cannot be read";
    TestTime = "E0603", Error, "a test's time is not a timestamp";
    TestAlert = "E0604", Error, "a test expects an alert for an ensemble that has none";
    Unused = "W0701", Warning, "a definition is never used";
    LongTraining = "W0702", Warning, "a training span is longer than a year";
    StateBudget = "E0801", Error, "one key's state does not fit the memory budget";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::all() {
            let id = code.id();
            assert!(seen.insert(id), "{id} used twice");
            let prefix = if code.level() == Level::Error {
                'E'
            } else {
                'W'
            };
            assert!(id.starts_with(prefix) && id.len() == 5, "{id}");
        }
    }
}
