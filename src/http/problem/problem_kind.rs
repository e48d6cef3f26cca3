//! `problem_kinds!`: declares every kind of error answer once, with its code, status and title, so that
//! the answers, the OpenAPI text and the README table all read one list the compiler keeps complete.

/// Declares `ProblemKind` (one variant per entry), its `code`, `status` and `title` (exhaustive
/// `match`es generated from the entries), and `CODES` (the same entries as tuples, in declaration order).
/// An entry cannot be written without all three.
macro_rules! problem_kinds {
    ($($kind:ident => ($code:literal, $status:literal, $title:literal),)+) => {
        /// What kind of problem an error answer reports: one per stable `code`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum ProblemKind {
            $($kind,)+
        }

        impl ProblemKind {
            /// The stable, machine-readable code clients branch on.
            pub(crate) const fn code(self) -> &'static str {
                match self {
                    $(ProblemKind::$kind => $code,)+
                }
            }

            /// The HTTP status of every answer of this kind.
            pub(crate) const fn status(self) -> u16 {
                match self {
                    $(ProblemKind::$kind => $status,)+
                }
            }

            /// The short summary, the same for every answer of this kind.
            pub(crate) const fn title(self) -> &'static str {
                match self {
                    $(ProblemKind::$kind => $title,)+
                }
            }
        }

        /// Every code with its status and title, in declaration order.
        pub const CODES: &[(&str, u16, &str)] = &[$(($code, $status, $title),)+];
    };
}

pub(crate) use problem_kinds;
