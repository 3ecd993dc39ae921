//! The ticket board's state: its columns and the selection.

#[derive(Default)]
pub struct TicketsState {
    pub column: usize,
    pub row: usize,
}

/// The board's columns, in order.
pub const BOARD: [crate::model::TicketState; 6] = [
    crate::model::TicketState::Queued,
    crate::model::TicketState::Running,
    crate::model::TicketState::Review,
    crate::model::TicketState::Merged,
    crate::model::TicketState::Failed,
    crate::model::TicketState::Cancelled,
];
