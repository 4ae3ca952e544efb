"""runner.plan"""
