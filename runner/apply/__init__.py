"""runner.apply"""
