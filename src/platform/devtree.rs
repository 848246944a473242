//! Placeholder: the device-tree reader.
