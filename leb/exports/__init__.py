"""Exports: jobs that write datasets to CSV or XLSX files in the background, the Exports page and downloads."""
