"""runner.runtime"""
