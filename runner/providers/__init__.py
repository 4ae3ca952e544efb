"""runner.providers"""
