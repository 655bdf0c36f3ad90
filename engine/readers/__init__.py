"""The record readers behind `engine.records`: bytes to text, CSV, JSON, spreadsheets, Parquet.

`engine.records` is the public face (`RecordSource`, `read_records`, `validate`); these
modules each read one kind of file into (row number, raw record) pairs, a row that
cannot be read becoming that row's `RecordError`, and say in one `InputError` what is
wrong with a file that cannot be read at all.
"""
