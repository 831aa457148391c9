"""Analyses computed on the model alone (pure, like the rest of ``model/``): the four properties
as plain checks, exhaustive exploration within small bounds, and two profiles compared on the
same histories.  Writing their results to files is the oracle's (``oracle/analysis_reports.py``)."""
