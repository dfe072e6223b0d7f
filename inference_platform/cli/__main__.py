from inference_platform.cli import main

main()
