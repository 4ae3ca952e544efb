"""runner.state"""
