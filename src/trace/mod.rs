//! Agent traces: importers, replay, export. (in progress)
