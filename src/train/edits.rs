//! The edits marketplaces see (crops, recompression, banners, ...), applied at random to make near-duplicate pairs.
