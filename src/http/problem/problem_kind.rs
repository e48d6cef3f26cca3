//! `problem_kinds!`: declares every kind of error answer once, with its code, status and title, so that
//! the answers, the OpenAPI text and the README table all read one list the compiler keeps complete.

/// Declares `ProblemKind` (one variant per entry), its `code`, `status` and `title` (exhaustive
/// `match`es generated from the entries), `ProblemKind::ALL`, and `CODES` (the same entries as tuples).
/// An entry cannot be written without all three, and an entry cannot be left out of `ALL`.
macro_rules! problem_kinds {
    ($($kind:ident => ($code:literal, $status:literal, $title:literal),)+) => {
        /// What kind of problem an error answer reports: one per stable `code`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ProblemKind {
            $($kind,)+
        }

        impl ProblemKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [ProblemKind] = &[$(ProblemKind::$kind,)+];

            /// The stable, machine-readable code clients branch on.
            pub const fn code(self) -> &'static str {
                match self {
                    $(ProblemKind::$kind => $code,)+
                }
            }

            /// The HTTP status of every answer of this kind.
            pub const fn status(self) -> u16 {
                match self {
                    $(ProblemKind::$kind => $status,)+
                }
            }

            /// The short summary, the same for every answer of this kind.
            pub const fn title(self) -> &'static str {
                match self {
                    $(ProblemKind::$kind => $title,)+
                }
            }
        }

        /// Every code with its status and title, as `ProblemKind::ALL` lists them.
        pub const CODES: &[(&str, u16, &str)] = &[$(($code, $status, $title),)+];
    };
}

pub(crate) use problem_kinds;
